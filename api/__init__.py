"""The HTTP API: documents, jobs, questions, answers and summaries over the reading engine."""
