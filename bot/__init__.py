"""tiendo: follow an action programme through to done, in Telegram."""
