# Shared by the wrk benches (sourced; needs SECS): one wrk run, parsed.
# wrk's --latency table gives p50/p99 in us/ms; normalised to microseconds.
wrk_run() { # url conc
  wrk -t1 -c"$2" -d"${SECS}s" --latency "$1" | tee /tmp/ffb.wrk | python3 -c '
import re,sys
t=sys.stdin.read()
def us(v):
    n=float(re.match(r"[\d.]+",v).group()); u=v[len(re.match(r"[\d.]+",v).group()):]
    return n*{"us":1,"ms":1000,"s":1e6}[u]
rps=float(re.search(r"Requests/sec:\s+([\d.]+)",t).group(1))
p50=us(re.search(r"^\s+50%\s+(\S+)",t,re.M).group(1)); p99=us(re.search(r"^\s+99%\s+(\S+)",t,re.M).group(1))
err=re.search(r"Non-2xx or 3xx responses: (\d+)",t)
print(f"{rps:.0f} {p50:.0f} {p99:.0f} {err.group(1) if err else 0}")'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
# A wrk_run line → the rate of 2xx/3xx answers (req/s less the others).
ok_rate() { awk -v s="$SECS" '{printf "%.0f\n", $1 - $4 / s}'; }
