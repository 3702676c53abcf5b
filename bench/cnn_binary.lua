-- wrk script: KServe v2 binary-extension inference on the benchmark CNN (scripts/gen_cnn.py).
--   wrk -t2 -c4 -d10s --latency -s bench/cnn_binary.lua http://127.0.0.1:PORT
-- Body = JSON header + 602112 bytes of little-endian FP32 for input [1,3,224,224], every
-- element 0.5 (what bench_ort_raw feeds ONNX Runtime); header
-- Inference-Header-Content-Length = the JSON header's length; the output is requested binary.
-- Non-200 counting works as in digits.lua (MG_BENCH_CHECK=1 for the exact, slower count).

local ELEMS = 1 * 3 * 224 * 224
local header = '{"inputs":[{"name":"input","shape":[1,3,224,224],"datatype":"FP32",'
   .. '"parameters":{"binary_data_size":' .. (ELEMS * 4) .. '}}],'
   .. '"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}'
local tensor = string.rep(string.char(0x00, 0x00, 0x00, 0x3f), ELEMS) -- 0.5f little-endian

wrk.method = "POST"
wrk.path = "/v2/models/cnn/infer"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
wrk.body = header .. tensor

local strict = os.getenv("MG_BENCH_CHECK") == "1"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

non200 = 0
first_status = 0
first_body = ""

if strict then
   function response(status, headers, body)
      if status ~= 200 then
         non200 = non200 + 1
         if first_status == 0 then
            first_status = status
            first_body = string.sub(body or "", 1, 300)
         end
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   if strict then
      local n, st, body = 0, 0, ""
      for _, t in ipairs(threads) do
         n = n + t:get("non200")
         if st == 0 and t:get("first_status") ~= 0 then
            st, body = t:get("first_status"), t:get("first_body")
         end
      end
      io.write(string.format("non-200 responses: %d of %d (exact count)\n", n, summary.requests))
      if n > 0 then
         io.write(string.format("first non-200: status %d body %s\n", st, body))
      end
   else
      io.write(string.format("non-200 responses: %d of %d (status >= 400, wrk's count)\n",
                             e.status, summary.requests))
   end
   io.write(string.format("socket errors: connect %d read %d write %d timeout %d\n",
                          e.connect, e.read, e.write, e.timeout))
end
