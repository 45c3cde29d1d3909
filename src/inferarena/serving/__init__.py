"""Model servers under load: start servers we own (or reach a remote one), drive them with LoadGen's
Server scenario, and find the peak QPS within a p99 SLA. See `bench` for the flow."""
