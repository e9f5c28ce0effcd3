"""Storage: models, engine, repositories, migrations."""
