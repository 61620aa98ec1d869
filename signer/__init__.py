"""Health-centre side: read verified records, build EU DCC payloads, sign HC1 QR codes and PDF passports."""
