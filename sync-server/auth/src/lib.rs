//! placeholder (the auth helper replaces this file)
