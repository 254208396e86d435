-- Nodes and the leader's lease (see store/nodes.py).

-- name: leader_locked
-- The lease (one row at most), locked while it is taken or renewed. No parameters.
SELECT node_id, lease_until FROM leader

-- name: leader_locked@postgres
SELECT node_id, lease_until FROM leader FOR UPDATE
