"""The matcher: every rule in one literal prefilter; hits then confirmed and scored per rule."""
