"""The rule book: rule files loaded, checked and compiled into frozen rules (see loader, model)."""
