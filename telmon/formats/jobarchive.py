"""Test4Theory job archives: a gzip'd tar whose member ``./jobdata`` holds ``key=value`` lines.

One archive is one arrival: station = the volunteer (``USER_ID``, else ``b-<BOINC_USERID>``),
no entries, ``message_time`` = the time jobdata was written (its tar mtime), and ``meta`` =
the parsed job summary (see ../shared/FORMATS.md, "Test4Theory job archives on NFS", and
tests/data/samples/test4theory/jobdata for a real one).

Unlike the old daemon, which skipped a bad archive silently, any fault rejects the whole archive
with its reason: a corrupt or truncated archive, no ``./jobdata``, a line that is not
``key=value``, or a job without the fields the statistics need. Half an archive is never
accepted, because the complete one arriving later would then be counted a second time.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from typing import Any

from telmon.model import ParseOptions, ParseResult, Problem, Unit

NAME = "jobarchive"

JOBDATA_MEMBERS = ("./jobdata", "jobdata")  # monitor.py opened "./jobdata"; `tar czf x -C d jobdata` omits "./"
MAX_JOBDATA_BYTES = 1024 * 1024
MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # a gzip bomb is rejected, not unpacked into memory
ANONYMOUS = "anonymous"  # station of a job that names no user; counted in the totals only

# Keys never stored nor published: BOINC_AUTHENTICATOR is a volunteer's account key.
_SECRET_KEY = re.compile(r"AUTHENTICATOR|PASSW(OR)?D|SECRET|TOKEN|PRIVATE", re.IGNORECASE)
_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 2**63  # larger integers stay text: the store's JSON and Redis counters are 64-bit
_GZIP_MAGIC = b"\x1f\x8b"


def sniff(head: bytes) -> bool:
    """A gzip stream whose first 512 unpacked bytes are a valid tar header."""
    if not head.startswith(_GZIP_MAGIC):
        return False
    try:
        first = zlib.decompressobj(wbits=31).decompress(head, tarfile.BLOCKSIZE)
    except zlib.error:
        return False
    if len(first) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(first, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def parse(data: bytes, *, name: str = "", options: ParseOptions | None = None) -> ParseResult:
    """One Unit for a good archive; no unit and the reasons for a bad one. Never raises."""
    tar_bytes, problem = _gunzip(data)
    if problem is not None:
        return ParseResult(problems=[problem])
    member, raw, problem = _find_jobdata(tar_bytes)
    if problem is not None:
        return ParseResult(problems=[problem])
    assert member is not None and raw is not None
    job, problems = parse_jobdata(raw)
    if problems:
        return ParseResult(problems=problems)
    problems = _check_job(job)
    if problems:
        return ParseResult(problems=problems)
    user = job_user(job)
    redacted = sorted(k for k in job if _SECRET_KEY.search(k))
    summary = {k: v for k, v in job.items() if k not in redacted}
    meta: dict[str, Any] = {"user": user, "job": summary}
    if redacted:
        meta["redacted"] = redacted
    job_time = float(member.mtime) if member.mtime and member.mtime > 0 else None
    unit = Unit(station=user or ANONYMOUS, entries=[], message_time=job_time, meta=meta,
                offset=0, length=len(data))
    return ParseResult(units=[unit])


def parse_jobdata(raw: bytes) -> tuple[dict[str, int | str], list[Problem]]:
    """``key=value`` lines -> dict; blank lines ignored, integers as int, a later key wins."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {}, [Problem(f"./jobdata is not UTF-8 text (byte {exc.start})", offset=exc.start)]
    job: dict[str, int | str] = {}
    problems: list[Problem] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        key, sep, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            problems.append(Problem(f"./jobdata line is not key=value: {stripped[:60]!r}", line=lineno))
            continue
        job[key] = _value(value)
    if not job and not problems:
        problems.append(Problem("./jobdata is empty"))
    return job, problems


def job_user(job: dict[str, int | str]) -> str | None:
    """The volunteer: ``USER_ID``, else ``b-<BOINC_USERID>``, else None."""
    uid = job.get("USER_ID")
    if uid not in (None, ""):
        return str(uid)
    boinc = job.get("BOINC_USERID")
    if boinc not in (None, ""):
        return f"b-{boinc}"
    return None


def _value(text: str) -> int | str:
    if _INT.fullmatch(text):
        n = int(text)
        if -_INT64 <= n < _INT64:
            return n
    return text


def _check_job(job: dict[str, int | str]) -> list[Problem]:
    """The fields the statistics cannot do without (monitor.py crashed on their absence)."""
    problems = []
    if "jobid" not in job:
        problems.append(Problem("./jobdata has no jobid"))
    exitcode = job.get("exitcode")
    if not isinstance(exitcode, int):
        problems.append(Problem("./jobdata has no integer exitcode" if exitcode is None
                                else f"./jobdata exitcode is not an integer: {exitcode!r}"))
    elif exitcode == 0:
        events = job.get("events")
        if not isinstance(events, int) or events < 0:
            problems.append(Problem("./jobdata of a successful job has no events count" if events is None
                                    else f"./jobdata events is not a count: {events!r}"))
    return problems


def _gunzip(data: bytes) -> tuple[bytes, Problem | None]:
    """Unpack the whole gzip stream (every member, as gzip(1) does), so CRCs and lengths are
    checked: a truncated archive (still being copied, or cut short) is refused, not read in part."""
    if not data.startswith(_GZIP_MAGIC):
        return b"", Problem("corrupt archive: not gzip data", offset=0)
    out = io.BytesIO()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=31)
            pending = rest
            while pending:
                budget = MAX_UNPACKED_BYTES + 1 - out.tell()
                out.write(d.decompress(pending, budget))
                if out.tell() > MAX_UNPACKED_BYTES:
                    return b"", Problem(f"archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                pending = d.unconsumed_tail
            if not d.eof:
                return b"", Problem(f"corrupt archive: gzip stream is truncated ({len(data)} bytes)")
            rest = d.unused_data
            if not rest.startswith(_GZIP_MAGIC):
                if rest.strip(b"\0"):
                    return b"", Problem(f"corrupt archive: {len(rest)} bytes of garbage after the gzip stream")
                break
    except zlib.error as exc:
        return b"", Problem(f"corrupt archive: {exc}")
    return out.getvalue(), None


def _find_jobdata(tar_bytes: bytes) -> tuple[tarfile.TarInfo | None, bytes | None, Problem | None]:
    """Walk every member (so a damaged header anywhere is caught), keep ./jobdata's bytes."""
    found: tarfile.TarInfo | None = None
    raw: bytes | None = None
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tf:
            for member in tf:
                if member.name not in JOBDATA_MEMBERS or found is not None:
                    continue
                found = member
                if not member.isreg():
                    return None, None, Problem("./jobdata in the archive is not a regular file")
                if member.size > MAX_JOBDATA_BYTES:
                    return None, None, Problem(f"./jobdata is too large ({member.size} bytes)")
                fh = tf.extractfile(member)
                raw = fh.read() if fh is not None else b""
                if len(raw) != member.size:
                    return None, None, Problem("corrupt archive: ./jobdata is truncated")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        return None, None, Problem(f"corrupt archive: {type(exc).__name__}: {exc}")
    if found is None:
        return None, None, Problem("archive holds no ./jobdata member")
    return found, raw, None
