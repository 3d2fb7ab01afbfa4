"""Decodes HID reports with hid-tools' report descriptor parser (not ours).

stdin: JSON list of {"descriptor": [bytes], "reports": [[bytes], ...]}
stdout: tab-separated lines, per item "size ITEM INPUT_BYTES OUTPUT_BYTES" (0: no output
report), and per non-constant field of each report "field ITEM REPORT USAGE_NAME V1,V2,...".
"""
import json
import sys

from hidtools.hid import ReportDescriptor


for index, item in enumerate(json.load(sys.stdin)):
    descriptor = ReportDescriptor.from_bytes(bytes(item["descriptor"]))
    (input_format,) = descriptor.input_reports.values()
    outputs = list(descriptor.output_reports.values())
    print("size", index, input_format.size, outputs[0].size if outputs else 0, sep="\t")
    for number, report in enumerate(item["reports"]):
        for field in descriptor.get(0, len(report)).fields:
            if not field.is_const:
                values = ",".join(str(value) for value in field.get_values(report))
                print("field", index, number, field.usage_name, values, sep="\t")
