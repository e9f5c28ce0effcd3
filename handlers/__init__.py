"""The Telegram surface: one module per flow; no SQL, no business rules."""
