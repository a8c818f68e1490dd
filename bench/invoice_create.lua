-- wrk script: POST /v1/invoices with a realistic body (3 line items, 2 tax rates, 3 installments, customer,
-- metadata), a unique external_id and Idempotency-Key per request. Prints one machine-readable "JSON {...}"
-- line at the end (latency percentiles in ms, requests/s, every kind of error, non-201 responses).
-- Environment: BENCH_API_KEY, BENCH_PATH (default /v1/invoices), BENCH_IDEMPOTENCY (0 = no header).

local api_key = os.getenv("BENCH_API_KEY") or ""
local path = os.getenv("BENCH_PATH") or "/v1/invoices"
local send_idempotency = os.getenv("BENCH_IDEMPOTENCY") ~= "0"
local threads = {}

local body_template = [[{"currency":"IDR","gateway":"xendit","external_id":"%s",]] ..
  [["description":"Order %s",]] ..
  [["customer":{"name":"Budi Santoso","email":"budi@example.com","phone":"+628111111111"},]] ..
  [["line_items":[{"name":"Widget","quantity":2,"unit_price":"150000","tax_rate":"0.11"},]] ..
  [[{"name":"Gadget","quantity":1,"unit_price":"99999","tax_rate":"0"},]] ..
  [[{"name":"Shipping","quantity":1,"unit_price":"25000","tax_rate":"0.11"}],]] ..
  [["installments":{"count":3},"metadata":{"source":"bench","channel":"web"}}]]

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("b%d-%d-%d", tid, os.time(), math.random(1, 1000000000))
  counter = 0
  non_201 = 0
  shown = 0
end

function request()
  counter = counter + 1
  local ext = prefix .. "-" .. counter
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. api_key }
  if send_idempotency then
    headers["Idempotency-Key"] = "bench-" .. ext
  end
  return wrk.format("POST", path, headers, string.format(body_template, ext, ext))
end

function response(status, headers, body)
  if status ~= 201 then
    non_201 = non_201 + 1
    if shown < 3 then
      shown = shown + 1
      io.stderr:write(string.format("non-201: %d %s\n", status, string.sub(body or "", 1, 300)))
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non_201") or 0)
  end
  local seconds = summary.duration / 1000000
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %.2f, "rps": %.2f, "p50_ms": %.1f, "p95_ms": %.1f, "p99_ms": %.1f, ' ..
    '"max_ms": %.1f, "mean_ms": %.1f, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
    '"errors_status": %d, "errors_timeout": %d, "non_201": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, bad))
end
