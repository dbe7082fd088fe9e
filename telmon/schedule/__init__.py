"""Station schedules: registry imports, slots coded as LRGS does (on time / T / U / M),
completeness and status per station, kept current as data arrives (issue 4).

``slots`` is the pure maths, ``registry`` reads registry files, ``store`` keeps the slot tables
(the record hook), ``reads`` answers from them, ``query`` formats answers for the API and CLI,
``service.install`` wires it into a running telmon, ``cli.register`` adds the commands.
"""
