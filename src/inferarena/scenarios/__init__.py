"""Scenarios: MLPerf LoadGen's SingleStream, MultiStream, Server and Offline, driving one Session."""
