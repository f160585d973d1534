"""``make bench``: the app against the limits of this machine, each as a ratio measured in one run.

Starts the local stack (Azurite in memory, the ACS simulator, the local host) on free ports, then:

- ingest: N delivery reports (one per message, records already sent) posted to the webhook, one
  event per request, concurrency C, as Event Grid delivers to the Python trigger; and the same
  for the batched endpoint (``POST /api/events/delivery-reports``, B events per request); against
  the raw single-entity upsert rate of the same Azurite at the same concurrency, and against the
  same mix of raw operations as the app (a point read and a 2-entity transaction per report;
  ``localdev/bench/mix.py``);
- send: ``POST /api/messages`` with 100 recipients against the simulator, against the simulator
  call alone plus 100 raw concurrent upserts;
- read: ``GET /api/messages/{id}`` against a raw point read;
- memory: the local host's peak RSS (VmHWM) after ingest;
- campaign scale and storage round trips per operation, on a third fresh stack
  (``localdev/bench/campaign.py``);
- the CSV export's memory at 10,000, 100,000 and 1,000,000 rows, without storage
  (``localdev/bench/export.py``).

Results go to ``bench-results/<UTC time>.json``; ``docs/benchmarks.md`` summarises a run.
Options: ``--reports N`` (5000), ``--concurrency C`` (16), ``--batch B`` (100), ``--campaign N``
(20000 messages in the campaign's tag; 0 skips the campaign's reads, not the round trips), ``--job N``
(10000 recipients in one campaign job through the queue worker, ``localdev/bench/job.py``; 0 skips it),
``--no-export`` (skips the export's memory at a million rows).
"""
