"""The intent model: what a message does (recommends, promises, moves off channel), learnt."""
