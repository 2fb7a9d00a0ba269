-- wrk script of `make bench` (bench/wrk.py): each POST a fresh registration, its callback URL
-- unique per thread and request, as bench/load.py sends them. BENCH_PATH, BENCH_TOKEN and
-- BENCH_PREFIX come from the environment.
local threads = {}
local counter = 0
local run_id = os.getenv("BENCH_RUN") or "run"
local prefix = os.getenv("BENCH_PREFIX")
local path = os.getenv("BENCH_PATH")
local token = os.getenv("BENCH_TOKEN") or ""

function setup(thread)
  thread:set("number", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.headers["Content-Type"] = "application/json"
  if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"callback_url": "%s%s-%d-%d/callbacks/approval", "title": "Bench expense report", '
      .. '"requester_email": "requester@example.com", "amount": "123.45", "currency": "EUR"}',
    prefix, run_id, number, counter)
  return wrk.format("POST", path, nil, body)
end
