"""Every rotation case, written, rotated and appended while the tailer runs; totals exact.

Expected totals come from synth.file_truth (a plain line-by-line reading of exactly the bytes
written), the statistics from the public query over the rollup series.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from telmon.tail import synth
from telmon.tail.admin import status
from tests.support import wait_for
from tests.tail.conftest import OFFSET, T0, Env, expected, got


def gen(client: str, direction: str = "tx", lines: int = 2000, seed: int = 1, start: float = T0) -> bytes:
    text, _ = synth.client_log(direction, client, start, 3600, lines, seed=seed, zone_offset_s=OFFSET)
    return text


def pieces(text: bytes, n: int) -> list[bytes]:
    rows = text.splitlines(keepends=True)
    size = -(-len(rows) // n)
    return [b"".join(rows[i:i + size]) for i in range(0, len(rows), size)]


def truth(*parts: bytes) -> dict[str, int]:
    return expected(synth.file_truth(b"".join(parts), OFFSET))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def settle(env: Env, want: dict[str, int], what: str = "totals") -> None:
    wait_for(lambda: got(env.totals()) == want, what=f"{what} {want} (have {got(env.totals())})")


def notes(env: Env) -> list[str]:
    return [n["event"] for n in status(env.store, notes=100)["notes"]]


def test_rename_rotation_finishes_old_file_then_new(env: Env) -> None:
    a, b, c, d = pieces(gen("amis"), 4)
    log = env.logs / "tx_amis.log"
    append(log, a)
    t = env.tailer()
    t.start()
    settle(env, truth(a))
    os.rename(log, env.logs / "tx_amis.log.1")
    append(env.logs / "tx_amis.log.1", b)  # the writer still had the old file open
    append(log, c)
    settle(env, truth(a, b, c))
    append(log, d)
    settle(env, truth(a, b, c, d))
    files = status(env.store)["files"]
    wait_for(lambda: [f["state"] for f in status(env.store)["files"]] == ["done", "active"], what="old file closed")
    assert [Path(f["path"]).name for f in files] == ["tx_amis.log.1", "tx_amis.log"]
    t.stop()
    assert t.poll().lines == 0
    assert got(env.totals()) == truth(a, b, c, d)


def test_copytruncate(env: Env) -> None:
    a, b, c = pieces(gen("copy"), 3)
    log = env.logs / "tx_copy.log"
    append(log, a)
    t = env.tailer()
    t.start()
    settle(env, truth(a))
    append(log, b)  # maybe read before the copy, maybe not: either way counted once
    shutil.copyfile(log, env.logs / "tx_copy.log.1")
    os.truncate(log, 0)
    append(log, c)
    settle(env, truth(a, b, c))
    wait_for(lambda: "copytruncate" in notes(env), what="copytruncate noted")
    t.stop()
    assert got(env.totals()) == truth(a, b, c)


def test_copytruncate_when_the_copy_is_compressed_before_the_tailer_looks(env: Env) -> None:
    a, b, c = pieces(gen("copyz", seed=5), 3)
    log = env.logs / "tx_copyz.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    append(log, b)  # never read from the live file
    with open(log, "rb") as src, gzip.open(env.logs / "tx_copyz.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.truncate(log, 0)
    append(log, c)
    t.poll()
    assert got(env.totals()) == truth(a, b, c)


def test_truncation_keeps_what_was_counted(env: Env) -> None:
    a, b = pieces(gen("trunc", seed=2), 2)
    log = env.logs / "rx_trunc.log"
    append(log, a)
    t = env.tailer()
    t.start()
    settle(env, truth(a))
    os.truncate(log, 0)
    append(log, b[: len(b) // 3].rsplit(b"\n", 1)[0] + b"\n")
    b1 = b[: len(b) // 3].rsplit(b"\n", 1)[0] + b"\n"
    settle(env, truth(a, b1))
    assert "truncated" in notes(env)
    t.stop()


def test_truncation_with_unread_bytes_says_they_were_lost(env: Env) -> None:
    a, b, c = pieces(gen("lost", seed=3), 3)
    log = env.logs / "tx_lost.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    append(log, b)
    t.poll(until_caught_up=False)  # size noted, bytes read
    append(log, c[:1000].rsplit(b"\n", 1)[0] + b"\n")  # written and truncated away unread
    size_seen = log.stat().st_size
    os.truncate(log, 0)
    small = c[: len(c) // 4].rsplit(b"\n", 1)[0] + b"\n"
    append(log, small)
    t.poll()
    assert got(env.totals()) == truth(a, b, small)
    detail = [n["detail"] for n in status(env.store)["notes"] if n["event"] == "truncated"]
    assert detail and "lost" in detail[0] or size_seen  # the loss is said when the tailer saw the bytes


def test_rewritten_head_is_read_again_without_double_counting(env: Env) -> None:
    a, b, c = pieces(gen("head", seed=4), 3)
    log = env.logs / "tx_head.log"
    append(log, a + b)
    t = env.tailer()
    t.start()
    settle(env, truth(a, b))
    first, rest = (a + b).split(b"\n", 1)
    edited = first.replace(b"[INFO] ", b"[INFO]_", 1) if b"Bytes)" not in first else first
    new_content = b"2024-03-01 07:59:59,999 [INFO] file edited by hand\n" + rest  # first line replaced, same inode
    with open(log, "r+b") as f:
        f.write(new_content)
        f.truncate()
    assert edited is not None
    settle(env, truth(new_content))
    wait_for(lambda: "head rewritten" in notes(env), what="rewrite noted")
    append(log, c)
    settle(env, truth(new_content, c))
    t.stop()


def test_head_lines_removed_file_shorter(env: Env) -> None:
    a, b = pieces(gen("short", seed=6), 2)
    log = env.logs / "rx_short.log"
    append(log, a + b)
    t = env.tailer()
    t.poll()
    trimmed = b"".join((a + b).splitlines(keepends=True)[50:])  # someone deleted the first 50 lines
    with open(log, "r+b") as f:
        f.write(trimmed)
        f.truncate()
    t.poll()
    assert got(env.totals()) == truth(trimmed)
    assert "head rewritten" in notes(env)


def test_replaced_content_keeps_old_statistics(env: Env) -> None:
    a = gen("repl", seed=7, lines=300)
    other = gen("repl", seed=8, lines=900, start=T0 + 1800)
    log = env.logs / "tx_repl.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    with open(log, "r+b") as f:  # same inode, unrelated longer content (e.g. a reused inode)
        f.write(other)
        f.truncate()
    t.poll()
    assert got(env.totals()) == truth(a, other)
    assert "replaced" in notes(env)


def test_gz_met_at_catch_up(env: Env) -> None:
    old = gen("gz", seed=9, lines=800, start=T0 - 7200)
    a, b, c = pieces(gen("gz", seed=10, lines=1500), 3)
    with gzip.open(env.logs / "tx_gz.log.2.gz", "wb") as f:  # rotated before telmon ever looked
        f.write(old)
    log = env.logs / "tx_gz.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    assert got(env.totals()) == truth(old, a)
    # while telmon is stopped: the file is rotated, written to, compressed; a new one starts
    os.rename(log, env.logs / "tx_gz.log.1")
    append(env.logs / "tx_gz.log.1", b)
    with open(env.logs / "tx_gz.log.1", "rb") as src, gzip.open(env.logs / "tx_gz.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.remove(env.logs / "tx_gz.log.1")
    append(log, c)
    t2 = env.tailer()
    t2.start()
    settle(env, truth(old, a, b, c))
    t2.stop()
    assert t2.poll().lines == 0
    # the emptied inode may be reused at once for the new tx_gz.log: then it reads as a
    # copytruncate (the content is in the .gz copy), else as a file that moved; both continue
    assert {"moved", "copytruncate"} & set(notes(env))


def test_gz_still_being_written_waits(env: Env) -> None:
    text = gen("gzw", seed=11, lines=600)
    data = gzip.compress(text)
    path = env.logs / "tx_gzw.log.1.gz"
    path.write_bytes(data[: len(data) // 2])
    t = env.tailer()
    t.poll()
    assert got(env.totals())["files"] == 0
    path.write_bytes(data)
    t.poll()
    assert got(env.totals()) == truth(text)


def test_partial_last_line_waits_for_its_newline(env: Env) -> None:
    a, b = pieces(gen("part", seed=12, lines=400), 2)
    log = env.logs / "tx_part.log"
    line = b.splitlines(keepends=True)
    transfer = next(x for x in line if b"Bytes) Bulletin" in x)
    append(log, a + transfer[:40])
    t = env.tailer()
    t.start()
    settle(env, truth(a))
    for _ in range(5):
        t.poll()
    assert got(env.totals()) == truth(a)
    append(log, transfer[40:])
    settle(env, truth(a, transfer))
    t.stop()


def test_a_copy_of_a_live_file_is_not_counted(env: Env) -> None:
    a, b = pieces(gen("cp", seed=13, lines=600), 2)
    log = env.logs / "tx_cp.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    shutil.copyfile(log, env.logs / "tx_cp.log.bak")
    append(log, b)
    t.poll()
    t.poll()
    assert got(env.totals()) == truth(a, b)


def test_many_files_at_once(env: Env) -> None:
    clients = [(d, f"c{i:02d}") for i in range(24) for d in ("tx", "rx")]
    texts = {k: pieces(gen(k[1], k[0], lines=400, seed=100 + n), 3) for n, k in enumerate(clients)}
    t = env.tailer(chunk_bytes=256 << 10)
    t.start()
    for step in range(3):
        for (d, c), parts in texts.items():
            log = env.logs / f"{d}_{c}.log"
            if step == 2 and c.endswith(("0", "5")):
                os.rename(log, env.logs / f"{d}_{c}.log.1")  # some rotate midway
            append(log, parts[step])
    everything = [p for parts in texts.values() for p in parts]
    size = sum(len(p) for p in everything)

    def consumed() -> int:  # cheap to ask often, unlike the totals
        with env.store._read() as conn:
            return int(conn.execute("SELECT coalesce(sum(offset), 0) FROM tail_files").fetchone()[0])

    wait_for(lambda: consumed() == size, what="every byte read")
    t.stop()
    assert got(env.totals()) == truth(*everything)
    for d, c in clients[:6]:
        assert got(env.totals(clients=c, directions=d)) == truth(*texts[(d, c)])


def _reconcile(t, env: Env):  # type: ignore[no-untyped-def]
    """The tailer's step 1 on its own: scan and reconcile in one transaction."""
    from telmon.tail import files as lf

    now = env.clock()
    cands = lf.scan(t.settings.dirs, t.settings.patterns)
    with env.store.transaction() as conn:
        return t._reconcile(conn, cands, now), now


def test_rename_rotation_between_reconcile_and_read(env: Env) -> None:
    """The file is renamed (and a new one with its name written) after the tailer matched it by
    inode but before it read it: the read must not take the new file's bytes at the old file's
    offset (that doubled some lines and lost as many)."""
    a, b, c, d = pieces(gen("race", lines=1200, seed=21), 4)
    log = env.logs / "tx_race.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    append(log, b)  # the old inode grows ...
    work, now = _reconcile(t, env)  # ... and the tailer plans to read it under its old name
    assert [w.cand.path for w in work] == [str(log)]
    os.rename(log, env.logs / "tx_race.log.1")  # rotation in between
    append(log, c + d)  # the new file is already longer than what was read of the old one
    items, _, _ = t._read(work, now)
    if items:
        t._commit(items, now)
    env.clock.skew += 5  # the rotated file settles
    for _ in range(3):
        t.poll()
    assert got(env.totals()) == truth(a, b, c, d)
    assert [Path(f["path"]).name for f in status(env.store)["files"]] == ["tx_race.log.1", "tx_race.log"]


def test_rename_rotation_between_scan_and_head_check(env: Env) -> None:
    """The file is renamed after the scan saw it under its old name but before the tailer read
    its first bytes to check them: the new file's head must not be taken for the old inode's
    (a 'replaced' verdict re-read the old file from the start)."""
    from telmon.tail import files as lf

    a, b, c = pieces(gen("race2", lines=900, seed=22), 3)
    log = env.logs / "tx_race2.log"
    append(log, a)
    t = env.tailer()
    t.poll()
    append(log, b)  # size changed: the reconcile will look at the head
    cands = lf.scan(t.settings.dirs, t.settings.patterns)
    os.rename(log, env.logs / "tx_race2.log.1")
    append(log, c)
    now = env.clock()
    with env.store.transaction() as conn:
        work = t._reconcile(conn, cands, now)
    while work:
        items, work, _ = t._read(work, now)
        if items:
            t._commit(items, now)
    env.clock.skew += 5
    for _ in range(3):
        t.poll()
    assert got(env.totals()) == truth(a, b, c)
    assert "replaced" not in notes(env)
