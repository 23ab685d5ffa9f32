"""Reading strategies: summary-tree navigation, chain of agents, attention-guided retrieval."""
