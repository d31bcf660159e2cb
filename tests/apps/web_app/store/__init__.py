"""persisty needs <main>.store to exist; this app keeps no structured records."""
