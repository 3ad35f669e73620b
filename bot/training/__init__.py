"""Building the intent model: labelled data in, a checked model file out (`bot train`)."""
