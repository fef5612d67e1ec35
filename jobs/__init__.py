"""The evaluation service: sweep specs, the SQL job queue, the Ray runner and the Serve API."""
