"""The gallery: embeddings as search vectors, and the in-memory FAISS index derived from the database."""
