//! Black-box tests of homeforge against the real civic-local binary (in progress).
