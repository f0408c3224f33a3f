"""Alerts: rules evaluated as the live updates arrive (``evaluator``), the system's own
alarms (``alarms``), and the notifications they make: stored, published on Kafka
`notifications`, pushed to the dashboards (``serving_layer.live``) and delivered by email
and webhook (``delivery``). `parallax alerts` runs them."""
