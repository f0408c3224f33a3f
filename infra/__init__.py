"""The floor, imported by every package and importing none of them: ``settings``,
``clients`` (Cassandra, Kafka), ``spark`` (Spark's conf), and the local stack: ``stack``,
``kafka_node``, ``cassandra_node``, ``airflow_env``, ``maven``, ``geoip``, ``proc``."""
