"""The generated benchmark suite: seeded scenes (``scene``), question tasks over them (``tasks``)
and the on-disk build / loader / train stream (``build``)."""
