"""The traffic generator behind `parallax generate`: realistic visits to N sites sent through
the collector's real HTTP endpoint, with the ground truth of what was accepted.

- ``catalog``: site templates (page maps, elements, custom events, goals), browsers and
  bots, referrers and campaigns;
- ``model``: the pure model: for a seed, a start and a rate, the same requests every time;
- ``sender``: the HTTP side: pacing, a small thread pool, the tracker's retries;
- ``truth``: the truth records, their writer (JSON Lines or Parquet) and summary;
- ``run``: registration of the sites and goals, one run, the command's output.
"""
