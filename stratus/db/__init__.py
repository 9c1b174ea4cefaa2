"""The shared database: models, migrations, transactions and queries."""
from stratus.db.session import Database

__all__ = ["Database"]
