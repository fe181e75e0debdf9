"""Word2Vec: CBOW and skip-gram with negative sampling (Mikolov et al. 2013), trained by a compiled kernel."""
