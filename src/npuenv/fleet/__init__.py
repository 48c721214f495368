"""Many nodes: the same tasks on N nodes, and what differs between them (issue: fleet)."""
