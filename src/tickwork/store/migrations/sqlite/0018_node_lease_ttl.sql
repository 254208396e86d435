-- The lease (seconds) each node renews, so that whoever reads the nodes judges each by
-- its own lease_ttl. Nodes registered before have none and are judged by the default.
ALTER TABLE nodes ADD COLUMN lease_ttl REAL;
