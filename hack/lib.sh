# Shell helpers shared by the hack/ scripts (sourced, not run).

# A random high loopback port nobody answers on (bash's /dev/tcp: no extra tools needed).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "error: no free port found" >&2
  exit 1
}
