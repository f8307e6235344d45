"""The prediction log: every prediction with its id, time, model version, slot, inputs and
outputs, written off the request path.

The serving app hands each answered request to `PredictionLog.submit`; a writer thread
commits batches to the store every `serving.log.flush_interval`. `flush` waits until
everything submitted so far is in the store, and `close` flushes and stops the writer
(graceful shutdown, bounded by a timeout).

`StoredPredictionLog` is the implementation: rows go to the metadata store's `predictions`
table, one multi-row INSERT per commit (durable at commit: SQLite WAL with
`synchronous=FULL`, or PostgreSQL); `keel predictions compact` later moves closed time
ranges into Parquet segments (`keel.predlog.read`). Two durability modes
(`serving.log.durability`):

- buffered: `submit` only enqueues in memory. A row acknowledged at time t is in the store
  by t + flush_interval + the commit it is written in, as long as the store answers; a
  hard crash (SIGKILL, power loss) loses what is younger.
- durable: `submit` also appends the rows to the spool (`keel.predlog.spool`) and returns
  once the spool is fsynced, concurrent requests sharing one fsync: an acknowledged row
  survives any crash.

In both modes the spool carries rows through a store outage (memory is moved to it, and
batches beyond `max_buffer` go straight to it) and through shutdown (what the store did not
take in time is written to it); it is replayed into the store by the writer, idempotently
(prediction ids are unique). Rows the store refuses for their content are isolated and set
aside in a dead-letter file, so that one bad row never stops the log.

The package, below serving, monitoring, retraining and the web UI, which all use it:

    ids         prediction ids (time-ordered, like run ids)
    log         `PredictionLog`, the interface the serving app writes to, and `PredictionBatch`
    writer      `StoredPredictionLog`, the writer thread; `open_prediction_log(workspace)`
    spool       the local disk that carries rows through outages, crashes and shutdown
    deadletter  rows the store refused: the dead-letter file and the operators' alert
    read        reading (`read_window`, `get`) and compacting into Parquet segments
"""

__all__: list[str] = []
