"""MemWalker: a summary tree built bottom-up, and an agent that navigates it from the root."""
