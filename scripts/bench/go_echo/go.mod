module gonet.local/bench/go_echo

go 1.19
