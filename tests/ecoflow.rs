//! Black-box tests of ecoflow against the real civic-local binary (in progress).
