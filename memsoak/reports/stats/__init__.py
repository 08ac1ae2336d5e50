"""Statistics: series in, numbers out (trend tests, warm-up cut, per-operation rates, snapshot
steps, tracemalloc attribution, the live trend). No verdict, no rendering."""
