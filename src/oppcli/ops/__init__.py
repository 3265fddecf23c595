"""Operations over a backend: audit and undo, export, import, sync. Return values; never print."""
