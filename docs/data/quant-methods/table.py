import json, glob, os, re, sys
rows = []
res = sys.argv[1]
for f in sorted(glob.glob(f"{res}/*.json")):
    name = os.path.basename(f)[:-5]
    if name == "summary": continue
    try:
        j = json.load(open(f))
    except Exception:
        continue
    fmt, m = name.rsplit("-", 1)
    log = open(f"{res}/{name}.quant.log").read()
    bpw = re.search(r"-> ([0-9.]+) bits/weight\)", log)
    wall = re.search(r"([0-9.]+) s wall ([0-9.]+) s user", log)
    rows.append(dict(format=fmt, method=m, bpw=float(bpw.group(1)) if bpw else None,
                     kld_mean=j["kld_mean"], kld_error=j["kld_error"], kld_p99=j["kld_p99"], same_top=j["same_top"],
                     ppl_q=j["ppl_q"], ppl_base=j["ppl_base"], n_scored=j["n_scored"],
                     quant_wall_s=float(wall.group(1)) if wall else None, quant_user_s=float(wall.group(2)) if wall else None))
order = {"rtn": 0, "imatrix": 1, "awq": 2, "gptq": 3}
rows.sort(key=lambda r: (r["format"], order.get(r["method"], 9)))
json.dump(rows, open(f"{res}/summary.json", "w"), indent=1)
print("| format | method | bits/weight | mean KLD | 99 %% KLD | same top-1 | PPL (ref %.3f) | quantize CPU s |" % rows[0]["ppl_base"])
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['format']} | {r['method']} | {r['bpw']:.3f} | {r['kld_mean']:.4f} ± {r['kld_error']:.4f} | {r['kld_p99']:.3f} | "
          f"{100*r['same_top']:.1f} % | {r['ppl_q']:.3f} | {r['quant_user_s']:.0f} |")
