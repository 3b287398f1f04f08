"""Event intake: signed webhooks verified, stored durably in an inbox, drained into raw_webhooks."""
