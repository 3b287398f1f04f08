"""reverse_etl."""
