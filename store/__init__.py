"""Every CQL statement Parallax runs, one module per table family.

- ``views``: the speed and batch view rows (and the speed layer's running session sums);
- ``registry``: sites, goals and the visitor-id salts;
- ``boundary``: the batch boundary and the record of batch runs;
- ``diagnostics``: the speed layer's dropped counts and the batch layer's drift record;
- ``provision``: the keyspace, tables and topics that `parallax stack up` puts in place.

Writes are upserts of full values (no counters), so a replay writes the same rows again.
The layers above call these; nothing here knows Spark.
"""
