//! pbs-keystore: API handlers, server and command line of the keystore.
