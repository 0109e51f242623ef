"""The student (and teacher) networks: autoencoder, pose encoder, latent video transformer."""
