/* libtls_ballast.so: TLS_BYTES bytes of thread-local storage and nothing else, preloaded beside
   libgonet.so into an unmodified server to measure what per-fiber TLS costs (tls_cost.sh). */
__attribute__((used)) __thread unsigned char gonet_tls_ballast[TLS_BYTES] = {1};
