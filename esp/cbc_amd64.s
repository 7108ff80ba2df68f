//go:build amd64 && !purego

#include "textflag.h"

// AES-CBC with AES-NI; see cbc_amd64.go. xk: round keys (16 bytes each, the
// decryption ones for cbcDecAsm), nr: rounds, iv: 16 bytes, updated to the
// last ciphertext block, blocks >= 1.

// func cbcEncAsm(xk *byte, nr int, iv *byte, dst, src *byte, blocks int)
TEXT ·cbcEncAsm(SB), NOSPLIT, $0-48
	MOVQ xk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ iv+16(FP), DX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ blocks+40(FP), BX
	MOVOU (DX), X0
	MOVOU (AX), X3

encblock:
	MOVOU (SI), X1
	PXOR  X1, X0
	PXOR  X3, X0
	LEAQ  16(AX), R8
	MOVQ  CX, R9
	DECQ  R9

encround:
	MOVOU  (R8), X2
	AESENC X2, X0
	ADDQ   $16, R8
	DECQ   R9
	JNZ    encround
	MOVOU      (R8), X2
	AESENCLAST X2, X0
	MOVOU      X0, (DI)
	ADDQ       $16, SI
	ADDQ       $16, DI
	DECQ       BX
	JNZ        encblock
	MOVOU      X0, (DX)
	RET

// func cbcDecAsm(xk *byte, nr int, iv *byte, dst, src *byte, blocks int)
TEXT ·cbcDecAsm(SB), NOSPLIT, $0-48
	MOVQ  xk+0(FP), AX
	MOVQ  nr+8(FP), CX
	MOVQ  iv+16(FP), DX
	MOVQ  dst+24(FP), DI
	MOVQ  src+32(FP), SI
	MOVQ  blocks+40(FP), BX
	MOVOU (DX), X8
	MOVOU (AX), X9

dec4:
	CMPQ  BX, $4
	JB    dec1
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVO  X0, X4
	MOVO  X1, X5
	MOVO  X2, X6
	MOVO  X3, X7
	PXOR  X9, X0
	PXOR  X9, X1
	PXOR  X9, X2
	PXOR  X9, X3
	LEAQ  16(AX), R8
	MOVQ  CX, R9
	DECQ  R9

dec4round:
	MOVOU  (R8), X10
	AESDEC X10, X0
	AESDEC X10, X1
	AESDEC X10, X2
	AESDEC X10, X3
	ADDQ   $16, R8
	DECQ   R9
	JNZ    dec4round
	MOVOU      (R8), X10
	AESDECLAST X10, X0
	AESDECLAST X10, X1
	AESDECLAST X10, X2
	AESDECLAST X10, X3
	PXOR       X8, X0
	PXOR       X4, X1
	PXOR       X5, X2
	PXOR       X6, X3
	MOVO       X7, X8
	MOVOU      X0, 0(DI)
	MOVOU      X1, 16(DI)
	MOVOU      X2, 32(DI)
	MOVOU      X3, 48(DI)
	ADDQ       $64, SI
	ADDQ       $64, DI
	SUBQ       $4, BX
	JMP        dec4

dec1:
	TESTQ BX, BX
	JZ    decdone
	MOVOU (SI), X0
	MOVO  X0, X4
	PXOR  X9, X0
	LEAQ  16(AX), R8
	MOVQ  CX, R9
	DECQ  R9

dec1round:
	MOVOU  (R8), X10
	AESDEC X10, X0
	ADDQ   $16, R8
	DECQ   R9
	JNZ    dec1round
	MOVOU      (R8), X10
	AESDECLAST X10, X0
	PXOR       X8, X0
	MOVO       X4, X8
	MOVOU      X0, (DI)
	ADDQ       $16, SI
	ADDQ       $16, DI
	DECQ       BX
	JMP        dec1

decdone:
	MOVOU X8, (DX)
	RET

// func cbcEnc4Asm(xk *byte, nr int, ivs *byte, bufs *[4]*byte, blocks int)
// encrypts four independent CBC streams in place, blocks blocks each,
// interleaved so that four AESENC chains run at once; ivs holds the four
// 16-byte chaining values, updated.
TEXT ·cbcEnc4Asm(SB), NOSPLIT, $0-40
	MOVQ  xk+0(FP), AX
	MOVQ  nr+8(FP), CX
	MOVQ  ivs+16(FP), DX
	MOVQ  bufs+24(FP), R8
	MOVQ  blocks+32(FP), BX
	MOVQ  0(R8), SI
	MOVQ  8(R8), DI
	MOVQ  16(R8), R10
	MOVQ  24(R8), R11
	MOVOU 0(DX), X0
	MOVOU 16(DX), X1
	MOVOU 32(DX), X2
	MOVOU 48(DX), X3
	MOVOU (AX), X8

enc4block:
	MOVOU (SI), X4
	MOVOU (DI), X5
	MOVOU (R10), X6
	MOVOU (R11), X7
	PXOR  X4, X0
	PXOR  X5, X1
	PXOR  X6, X2
	PXOR  X7, X3
	PXOR  X8, X0
	PXOR  X8, X1
	PXOR  X8, X2
	PXOR  X8, X3
	LEAQ  16(AX), R8
	MOVQ  CX, R9
	DECQ  R9

enc4round:
	MOVOU  (R8), X9
	AESENC X9, X0
	AESENC X9, X1
	AESENC X9, X2
	AESENC X9, X3
	ADDQ   $16, R8
	DECQ   R9
	JNZ    enc4round
	MOVOU      (R8), X9
	AESENCLAST X9, X0
	AESENCLAST X9, X1
	AESENCLAST X9, X2
	AESENCLAST X9, X3
	MOVOU      X0, (SI)
	MOVOU      X1, (DI)
	MOVOU      X2, (R10)
	MOVOU      X3, (R11)
	ADDQ       $16, SI
	ADDQ       $16, DI
	ADDQ       $16, R10
	ADDQ       $16, R11
	DECQ       BX
	JNZ        enc4block
	MOVOU      X0, 0(DX)
	MOVOU      X1, 16(DX)
	MOVOU      X2, 32(DX)
	MOVOU      X3, 48(DX)
	RET
