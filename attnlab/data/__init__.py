"""Data: fetching and caching corpora, text normalisation, parallel-data readers, token batching."""
