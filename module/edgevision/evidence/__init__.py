"""Evidence of events: snapshots and clips, kept offline first, delivered to Blob Storage or a folder."""
