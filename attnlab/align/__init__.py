"""Cross-lingual word embeddings: map Chinese and English Word2Vec spaces onto each other with
orthogonal Procrustes and translate words by nearest neighbour (cosine or CSLS), following
Mikolov et al. 2013 ("Exploiting Similarities among Languages for Machine Translation"), Xing et
al. 2015, Artetxe et al. 2016/2018 and Conneau et al. 2018 ("Word Translation Without Parallel Data")."""
