"""The serving layer: the Flask app (``serving_layer.app``), its blueprints, the reports
facade (``serving_layer.reports``) and the live pushes over Socket.IO (``serving_layer.live``)."""
