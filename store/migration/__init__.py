"""Copy-on-first-login: move v1 rows into the default workspace, once, verified.

How it stays exactly-once and resumable (PRODUCT.md promises 1-4, 7):

* A **claim row** is written with a condition before anything is copied. It names the
  attempt's workspace id (its partition); every run that resumes the attempt fills that one
  partition, and the flag names the one that became the workspace.
* The holder **heartbeats**: it changes the claim's random ``version`` at least every third of
  the lease. A contender takes over only after seeing the *same* version for a whole lease on
  its *own* monotonic clock (the DynamoDB lock client's rule), so no two hosts' clocks are
  compared, and a takeover is a conditional write on the version it saw.
* Each copy writer has a **fence** row naming the run that holds the claim; taking the claim
  over moves every fence in the same transaction (the few fenced writes are the records of
  kept-back rows).
* The copy reads v1 with a strongly consistent, parallel, paginated Scan and writes raw
  AttributeValues with parallel **BatchWriteItem straight into the attempt's partition**
  (``bulk``), retrying throttling and UnprocessedItems with capped, jittered backoff; the
  claim records, per scan segment, the last page written: a later run resumes there.
* **A partition per attempt** is what makes an unconditional write safe: nobody sees a
  workspace until its WORKSPACE row and member rows exist, and those are written only in the
  flag's transaction. A voluntary hand-over (a slice's end, a transient failure after the
  writers joined) keeps the attempt; a takeover of a *lapsed* claim, whose holder may be
  paused with a copy in flight, starts a new attempt in a fresh partition
  (``claim.new_attempt``), and so do a hand-over from outside a run that did not stop and a
  copy that starts over because v1 changed. The stale holder's late copies land in its
  abandoned partition (no workspace row, no members: invisible; ``migration cleanup``
  deletes it), and its fenced writes are refused by DynamoDB, so it can never overwrite what
  people changed after the flag.
* **One verification pass** before the flag (``verify``): copied + kept back equals an
  independent count of the v1 rows, and COUNT Queries of the partition find every copy.
* The **flag** is written last, in one transaction with a check that the claim is still ours,
  the WORKSPACE row and the member rows, with a client request token so a retry after a lost
  answer is recognised as our own write.
* A v1 row v2 cannot store as it is (an index key of the wrong type, a key too long once
  prefixed, too large with its v2 keys, a name v2 sets itself) is **kept back**: never altered,
  never dropped, recorded with its reason, and the rest is copied (PRODUCT.md promise 10). The
  flag is written only when copied + kept back equals a fresh count of the v1 rows.
* A run that fails is **classified** (``errors.classify``): a transient failure leaves the
  claim ``waiting`` with a backoff across runs (``nextAttemptAt``), a permanent one leaves it
  ``failed`` until the operator's ``migration retry``; every write on the claim recognises its
  own earlier try whose answer was lost (PRODUCT.md promise 11).
* A run may be bounded (a **slice**: a deadline, or a stop when its process exits): it stops
  at the first page boundary after that, publishes its verified counts and cursors and
  **hands the claim over** (``lease.hand_over``: state ``waiting``, no error, no delay), so the
  next request takes it at once and resumes there (PRODUCT.md promise 12).

* **Late v1 writes** (a v1 server still running in a rolling deploy, PRODUCT.md promise 13)
  reach v2 after the flag: ``db init`` turns on the table's stream before the first copy, and
  every v1 item, setting or member key the stream shows after the copy began is applied
  (``sync``: the v1 row read now, its copy put or deleted conditionally, read back until both
  agree), so order and repetition do not matter. v2 wins: a row people created, changed or
  deleted in v2 carries the ``v2ChangedAt`` marker or a tombstone (``store.changes``), and a
  late v1 write to it is recorded as a **conflict**, never applied. Without a stream, or once
  it expired (24 h), every row is compared instead. After the flag one server process at a
  time holds the **sync lease** (``synclease``: a version heartbeat, taken over after a whole
  lease unchanged on the taker's own clock, deleted at exit so the next request anywhere
  takes it) and polls the stream every 2 s (``blueprints/migration/latesync.py``); the
  operator's ``migration sync`` does the same on demand, safely beside it.

The holder stops copying as soon as it cannot show a heartbeat confirmed within half a lease,
so a holder that was paused (or cut off) does not keep writing after a takeover.

The claim deliberately has no TTL: it names the attempt and the abandoned partitions, and a
claim that vanished after a crash would let a second claim and a second flag race. Whether
it has lapsed is judged only by its version standing still, never by a stored expiry time.

Defaults: a 30 s lease rides out garbage-collection pauses and slow networks without a
takeover, and a crashed holder costs people at most that long on the preparing page; an 8 s
budget per batch lets the SDK's and our own retries work before the page says "retrying".

The modules, each owning one part (callers import from the module that owns a name):

* ``rows``: how a v1 row becomes its v2 copy, whether v2 can store it, and when a copy counts
  as identical.
* ``kept``: the records of rows kept back because v2 cannot store them as they are.
* ``v1``: reading the v1 rows (Scan for items, Query for settings and members).
* ``claim``: the claim row, its states and progress, the writers' fence rows.
* ``acquire``: taking the claim (first, or over a lapsed or released one), or recording
  that the server refused it for good.
* ``lease``: what a holder writes while it holds the claim (heartbeats) and how it lets go
  (a failure, transient or permanent, or a slice's hand-over); the operator's retry.
* ``heartbeat``: the holder's heartbeat thread and the fence check every copy waits on.
* ``bulk``: the copy's BatchWriteItem into the attempt's partition, narrowed to the rows
  DynamoDB refuses, and counting a partition.
* ``fenced``: the fenced transactions (kept-back records, visible rows that do not fit
  beside the flag), narrowed to the rows DynamoDB refuses.
* ``verify``: the verification pass before the flag.
* ``flag``: the flag row, written once and last.
* ``status``: the migration's state (none, running, waiting, failed, complete) in one read,
  and the gate's one read (the flag, the claim, the person's own v1 member row).
* ``engine``: one run of the copy (or one slice of it), from a held claim to the flag.
* ``check``: verifying the copy, deleting v1 rows afterwards and abandoned attempts'
  partitions (operator commands).
* ``sync``: applying late v1 writes, one batch of keys at a time, and the full comparison.
* ``stream``: reading late v1 writes from the table's stream, with per-shard checkpoints.
* ``catchup``: stream or full comparison, for ``migration sync``, ``cleanup`` and the app.
* ``conflicts``: the records of late v1 writes refused because v2 changed the row.
* ``synclease``: which process applies late v1 writes by itself.
* ``legacy``: a v1 data set for demos and tests, written exactly as v1 stored it.
* ``errors``: why a run stopped, which failures are worth another run, and reading a
  cancelled transaction by position.
"""
