-- wrk script: at the end of a run, prints one machine-readable line for run.sh, since wrk's own
-- --latency report stops at p99 and the benchmark table wants p999 as well.
--   GONET_WRK rps=R p50_us=.. p99_us=.. p999_us=.. requests=N errors=E non2xx=S
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "GONET_WRK rps=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f requests=%d errors=%d non2xx=%d\n",
    summary.requests / seconds, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.requests, e.connect + e.read + e.write + e.timeout,
    e.status))
end
